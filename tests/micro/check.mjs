// Checks a kryten-cpp service's NATS Service API (PROTOCOL.md §8) with the
// official JavaScript client, @nats-io/services: ping, info and stats must
// reach it and pass the client's parsing, and the replies carry the schema's
// fields and types.
//   node check.mjs NATS_URL SERVICE_NAME
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Svcm } from "@nats-io/services";

const [url, name] = process.argv.slice(2);
const nc = await connect({ servers: url });
const client = new Svcm(nc).client({ maxWait: 1000 });

async function collect(iterPromise) {
  const out = [];
  for await (const x of await iterPromise) out.push(x);
  return out;
}

// The service may still be starting: ask until it answers (bounded). Before it
// has subscribed, the server answers "no responders", which the client throws.
async function pingUntilAnswered() {
  for (let i = 0; i < 50; i++) {
    try {
      const found = await collect(client.ping(name));
      if (found.length > 0) return found;
    } catch (err) {
      if (err?.name !== "NoResponders" && !/no responders/i.test(String(err?.message))) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return [];
}
let pings = await pingUntilAnswered();
assert.equal(pings.length, 1, "one instance answers PING by name");
const id = pings[0].id;
for (const p of [...pings, ...(await collect(client.ping())), ...(await collect(client.ping(name, id)))]) {
  if (p.name !== name) continue;
  assert.equal(p.type, "io.nats.micro.v1.ping_response");
  assert.equal(p.id, id);
  assert.match(p.version, /^\d+\.\d+\.\d+/);
  assert.equal(typeof p.metadata, "object");
}

// Two command requests, so that STATS has something to count.
for (let i = 0; i < 2; i++) {
  const r = await nc.request(`kryten.${name}.command`, JSON.stringify({ command: "ping" }), { timeout: 2000 });
  assert.equal(r.json().success, true);
}

const infos = await collect(client.info(name, id));
assert.equal(infos.length, 1);
const info = infos[0];
assert.equal(info.type, "io.nats.micro.v1.info_response");
assert.equal(typeof info.description, "string");
assert.ok(Array.isArray(info.endpoints));
const ep = info.endpoints.find((e) => e.subject === `kryten.${name}.command`);
assert.ok(ep, "the command endpoint is listed");
assert.equal(ep.queue_group, "q");

const statsList = await collect(client.stats(name));
assert.equal(statsList.length, 1);
const stats = statsList[0];
assert.equal(stats.type, "io.nats.micro.v1.stats_response");
assert.match(stats.started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
const es = stats.endpoints.find((e) => e.subject === `kryten.${name}.command`);
assert.ok(es);
for (const k of ["num_requests", "num_errors", "processing_time", "average_processing_time"])
  assert.ok(Number.isInteger(es[k]), `${k} is an integer`);
assert.equal(typeof es.last_error, "string");
assert.ok(es.num_requests >= 2, "STATS counts the command requests");

await nc.close();
console.log(`NATS Service API of ${name} (${id}): ping, info and stats OK`);
