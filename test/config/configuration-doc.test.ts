// docs/configuration.md lists every key the schema has, with the schema's default: the reference an
// operator reads stays true as keys are added.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigSchema } from "../../src/config/schema.ts";

const doc = readFileSync(join(import.meta.dir, "../../docs/configuration.md"), "utf8");
const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? "";

function leaves(v: unknown, path: string[] = []): string[][] {
  if (v && typeof v === "object" && !Array.isArray(v)) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  return [path];
}

test("every schema key is in the reference, and the reference's values are the schema's defaults", () => {
  const documented = ConfigSchema.parse(parse(yamlBlock));
  const defaults = ConfigSchema.parse({});
  expect(documented).toEqual(defaults);
  const docKeys = new Set(leaves(parse(yamlBlock)).map((p) => p.join(".")));
  const missing = leaves(defaults).map((p) => p.join(".")).filter((k) => ![...docKeys].some((d) => d === k || k.startsWith(d + ".")));
  expect(missing).toEqual([]);
});
