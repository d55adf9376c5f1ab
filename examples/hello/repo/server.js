// The example app Flui deploys in the local sandbox.
const http = require('node:http');

const greeting = process.env.GREETING || 'Hello';
http
  .createServer((req, res) => {
    if (req.url === '/healthz') return res.end('ok\n');
    res.end(`${greeting}\n`);
  })
  .listen(Number(process.env.PORT) || 8080);
