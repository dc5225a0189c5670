// Prints "N passed, N failed, N skipped" summed over JUnit reports (deno
// test's and node --test's). In deno's report a node:test suite appears both
// as a case and as the parent of its cases ("suite > test"), and a failing
// test fails its suite too, so only leaves are counted.
import { readFileSync } from "node:fs";

let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(2)) count(readFileSync(file, "utf8"));
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);

function count(xml) {
  const unescape = (text) =>
    text.replace(/&(lt|gt|quot|apos|amp);/g, (_, name) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[name]);
  const cases = [...xml.matchAll(/<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)].map((match) => ({
    name: unescape(match[1]),
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
}
