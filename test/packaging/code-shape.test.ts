// The shape the project keeps src/ in, so that each part can be read in one sitting: no file
// longer than 450 lines, no function or method longer than 100 (the aim is 400 and 80). Measured with the TypeScript
// compiler's own parser, so a function is what the language says it is: declarations, methods,
// accessors, constructors, arrow functions and function expressions, each from its first token to
// its closing brace (a leading comment does not count; a nested function counts towards its parent).
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dir, "..", "..");
const SRC = join(ROOT, "src");
const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 100;

interface FunctionSpan {
  name: string;
  line: number;
  lines: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** A readable name for a function node: its own, or the variable, property or class member it is assigned to. */
function functionName(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return `${className(node.parent)}.constructor`;
  const own = node.name?.getText(file);
  if (own && (ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node))) {
    return ts.isClassLike(node.parent) ? `${className(node.parent)}.${own}` : own;
  }
  if (own) return own;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText(file);
  }
  const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
  return `(anonymous function at line ${line + 1})`;
}

function className(node: ts.Node): string {
  return ts.isClassLike(node) && node.name ? node.name.text : "(anonymous class)";
}

/** Every function-like node of a file with its length in lines. */
function functionSpans(fileName: string, text: string): FunctionSpan[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const spans: FunctionSpan[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const first = file.getLineAndCharacterOfPosition(fn.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(fn.getEnd()).line;
      spans.push({ name: functionName(fn, file), line: first + 1, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return spans;
}

/** What breaks the limits in one file, as messages that name the file and the function. */
function shapeProblems(path: string, text: string): string[] {
  const problems: string[] = [];
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  if (lines > MAX_FILE_LINES) problems.push(`${path}: ${lines} lines (limit ${MAX_FILE_LINES})`);
  for (const fn of functionSpans(path, text)) {
    if (fn.lines > MAX_FUNCTION_LINES) {
      problems.push(`${path}:${fn.line} ${fn.name}: ${fn.lines} lines (limit ${MAX_FUNCTION_LINES})`);
    }
  }
  return problems;
}

describe("code shape under src/", () => {
  test("no file above 450 lines, no function or method above 100", () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(20);
    const problems = files.flatMap((f) => shapeProblems(relative(ROOT, f), readFileSync(f, "utf8")));
    expect(problems).toEqual([]);
  });

  test("the measure flags a 101-line function of every kind, not a 100-line one, and a long file", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `    x += ${i};`).join("\n");
    // Each piece: [source text, the line its function starts on within the piece, the name reported].
    const pieces: Array<[string, number, string]> = [
      [`export function declared(x: number) {\n${body(99)}\n}`, 1, "declared"],
      [`const arrow = (x: number) => {\n${body(99)}\n};`, 1, "arrow"],
      [`const expression = function (x: number) {\n${body(99)}\n};`, 1, "expression"],
      [`class Thing {\n  constructor(x: number) {\n${body(99)}\n  }\n}`, 2, "Thing.constructor"],
      [`class Other {\n  method(x: number) {\n${body(99)}\n  }\n}`, 2, "Other.method"],
      [`class Third {\n  get value() {\n${body(99)}\n  }\n}`, 2, "Third.value"],
      [`const object = {\n  handler(x: number) {\n${body(99)}\n  },\n};`, 2, "handler"],
      [`[1].map(function (x: number) {\n${body(99)}\n});`, 1, "(anonymous function at line START)"],
      [`function hundred(x: number) {\n${body(98)}\n}`, 0, ""],
    ];
    let at = 1;
    const expected: string[] = [];
    for (const [text, offset, name] of pieces) {
      const line = at + offset - 1;
      if (offset) expected.push(`src/example.ts:${line} ${name.replace("START", String(line))}: 101 lines (limit 100)`);
      at += text.split("\n").length;
    }
    const text = pieces.map(([t]) => t).join("\n") + "\n";
    expect(at - 1).toBeGreaterThan(450);
    expect(shapeProblems("src/example.ts", text)).toEqual([`src/example.ts: ${at - 1} lines (limit 450)`, ...expected]);
    expect(shapeProblems("src/short.ts", `function hundred(x: number) {\n${body(98)}\n}\n`)).toEqual([]);
  });
});
