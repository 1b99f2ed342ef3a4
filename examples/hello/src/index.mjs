// The hello-serverless Mattermost App on AWS Lambda, in plain Node (no dependencies: the function zip is this file).
//
// The apps plugin invokes the function synchronously with an API-Gateway-like payload (appsctl.md §6):
//   {"path": <call path>, "httpMethod": "POST", "headers": {...}, "body": "<CallRequest JSON as a string>"}
// and reads back {statusCode, headers, body}: anything but 200 is a failed call, and `body` is parsed as the
// CallResponse. `appsctl aws test lambda` calls /ping and requires exactly {"type":"ok","text":"PONG"}, so /ping must
// answer nothing more than that.

const JSON_HEADERS = { 'Content-Type': 'application/json' };

const respond = (statusCode, callResponse) => ({ statusCode, headers: JSON_HEADERS, body: JSON.stringify(callResponse) });
const ok = (fields) => respond(200, { type: 'ok', ...fields });
const error = (statusCode, text) => respond(statusCode, { type: 'error', text });

const routes = {
  '/ping': () => ok({ text: 'PONG' }),

  // One `/hello` slash command. The server expands the bindings itself; the app only names the call to submit.
  '/bindings': () =>
    ok({
      data: [
        {
          location: '/command',
          bindings: [
            {
              location: 'hello',
              label: 'hello',
              icon: 'icon.png',
              description: 'Says hello from AWS Lambda',
              submit: { path: '/send' },
            },
          ],
        },
      ],
    }),

  '/send': () => ok({ text: 'Hello from AWS Lambda!' }),
};

export async function handler(event) {
  const path = typeof event?.path === 'string' ? event.path : '';
  // The CallRequest is not needed to answer, but a body that is not JSON means the caller is not the apps plugin.
  if (typeof event?.body === 'string' && event.body !== '') {
    try {
      JSON.parse(event.body);
    } catch {
      return error(400, 'the request body is not a JSON CallRequest');
    }
  }
  const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (!route) return error(404, `hello-serverless has no call ${JSON.stringify(path)}`);
  return route();
}
