// The --bot smoke test: a user's bot (here the echo bot example) ran in the
// kryten-cpp column, every event of scenario 1 reached it, the scenarios that
// need the bench bot were left out, and the idle figure is there.
//   node check_bot_results.mjs RESULTS.json BOT_PATH
import { readFileSync } from 'node:fs';

const [results, botPath] = process.argv.slice(2);
const r = JSON.parse(readFileSync(results, 'utf8'));
const fail = (m) => {
  console.error(`FAIL: ${m}`);
  process.exit(1);
};

const sys = r.systems?.kryten;
if (sys?.label !== 'your bot') fail(`the kryten-cpp column is labelled ${sys?.label}`);
if (sys.command?.[0] !== botPath) fail(`the column ran ${JSON.stringify(sys.command)}`);
if (sys.command.some((a) => a.includes('{config}'))) fail('{config} was not replaced');
const k = r.scenarios?.max_throughput?.shared?.systems?.kryten;
if (!k) fail('no scenario 1 figures for the bot');
if (!(k.sent > 0) || k.received !== k.sent) fail(`the bot received ${k.received} of ${k.sent}`);
if (k.dropped !== 0) fail(`the bot dropped ${k.dropped}`);
if (r.scenarios.slow_handlers || r.scenarios.burst) fail('scenarios 3 and 4b ran with --bot');
if (!r.notes.some((n) => n.startsWith('scenario 3: left out with --bot'))) fail('no note on scenario 3');
const idle = r.scenarios.idle?.fresh?.kryten;
if (typeof idle?.cores !== 'number') fail('no idle figure for the bot');
console.log(`ok: ${k.received}/${k.sent} events reached the bot, idle ${idle.cores} cores`);
