// Prints one line per JUnit report (deno test's and node --test's), then
// "N passed, N failed, N skipped" summed over them. In deno's report a
// node:test suite appears both as a case and as the parent of its cases
// ("suite > test"), and a failing test fails its suite too, so only leaves are
// counted. A report that is missing counts as a failure.
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";

const total = { passed: 0, failed: 0, skipped: 0 };
const line = ({ passed, failed, skipped }) => `${passed} passed, ${failed} failed, ${skipped} skipped`;
for (const file of process.argv.slice(2)) {
  const counts = existsSync(file) ? count(readFileSync(file, "utf8")) : { passed: 0, failed: 1, skipped: 0 };
  console.log(`  ${basename(file, ".xml")}: ${existsSync(file) ? line(counts) : "no report"}`);
  for (const key of Object.keys(total)) total[key] += counts[key];
}
console.log(line(total));
process.exit(total.failed > 0 ? 1 : 0);

function count(xml) {
  let passed = 0, failed = 0, skipped = 0;
  const unescape = (text) =>
    text.replace(/&(lt|gt|quot|apos|amp);/g, (_, name) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[name]);
  // Attributes are read quote-aware: Node 24's reporter leaves ">" unescaped in them ("CLIENT -> GLOBAL").
  const cases = [...xml.matchAll(/<testcase\b((?:[^>"]|"[^"]*")*?)(\/>|>([\s\S]*?)<\/testcase>)/g)].map((match) => ({
    name: unescape(/\bname="([^"]*)"/.exec(match[1])?.[1] ?? ""),
    body: match[3] ?? "",
  }));
  const names = new Set(cases.map((c) => c.name));
  const isParent = new Set();
  for (const name of names) {
    const parts = name.split(" > ");
    for (let i = 1; i < parts.length; i++) isParent.add(parts.slice(0, i).join(" > "));
  }
  let leafFailures = 0;
  for (const { name, body } of cases) {
    if (isParent.has(name)) continue;
    if (/<(failure|error)\b/.test(body)) leafFailures++;
    else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
  // A failure outside any leaf (a file that does not load) still counts.
  const reported = Number(/<testsuites[^>]*failures="(\d+)"/.exec(xml)?.[1] ?? 0);
  failed += leafFailures > 0 ? leafFailures : reported;
  return { passed, failed, skipped };
}
