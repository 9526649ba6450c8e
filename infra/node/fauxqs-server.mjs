// SQS emulator for the local stack, bound to 127.0.0.1 only (fauxqs' own CLI
// listens on every address). Port: first argument, else $FAUXQS_PORT, else 4566
// (0 picks a free one). Set FAUXQS_LOGGER=true for request logs.
// Prints one line on stdout when it accepts requests:
//   fauxqs ready on http://127.0.0.1:<port>
//
//   node infra/node/fauxqs-server.mjs 4566
import { buildApp } from "fauxqs";

const HOST = "127.0.0.1";
const raw = process.argv[2] ?? process.env.FAUXQS_PORT ?? "4566";
const port = Number(raw);
if (!/^\d+$/.test(raw) || port > 65535) {
  console.error(`fauxqs-server: invalid port ${JSON.stringify(raw)}`);
  process.exit(2);
}

// Two fixes over fauxqs' defaults, on its queue store (an internal module of
// the exactly pinned fauxqs version, hence the path import and the checks):
// - queue URLs are http://127.0.0.1:<port>/000000000000/<name>, reachable
//   (fauxqs' default host sqs.<region>.localhost does not resolve here);
// - a queue is found by any URL ending in its name, as on AWS, not only by the
//   exact URL string CreateQueue returned.
const { SqsStore } = await import(
  new URL("./node_modules/fauxqs/dist/sqs/sqsStore.js", import.meta.url)
);
const proto = SqsStore?.prototype;
for (const method of ["buildQueueUrl", "getQueue", "getQueueByName", "deleteQueue"]) {
  if (typeof proto?.[method] !== "function") {
    console.error(`fauxqs-server: fauxqs internals changed (SqsStore.${method}); update this launcher`);
    process.exit(3);
  }
}
let boundPort = port;
proto.buildQueueUrl = (name) => `http://${HOST}:${boundPort}/000000000000/${name}`;
const { getQueue, deleteQueue } = proto;
proto.getQueue = function (url) {
  return (
    getQueue.call(this, url) ??
    (typeof url === "string" ? this.getQueueByName(url.slice(url.lastIndexOf("/") + 1)) : undefined)
  );
};
proto.deleteQueue = function (url) {
  const queue = this.getQueue(url);
  return queue ? deleteQueue.call(this, queue.url) : false;
};

const app = buildApp({ logger: process.env.FAUXQS_LOGGER === "true" });
try {
  await app.listen({ port, host: HOST });
} catch (err) {
  console.error(`fauxqs-server: cannot listen on ${HOST}:${port}: ${err.message}`);
  process.exit(1);
}
boundPort = app.server.address().port;
console.log(`fauxqs ready on http://${HOST}:${boundPort}`);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    app.close().finally(() => process.exit(0));
  });
}
