import { runCli } from './program';

// The SDK warns on every run that its 2027 releases will need Node 22. appsctl pins its SDK, so the warning says nothing
// actionable to someone running a command; it would only bury the command's own output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
});
process.exitCode = code;
