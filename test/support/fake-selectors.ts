// Field and label selectors as the API server parses them (the subset the collector and the tests
// use), for the fake API server.
import type { K8sPod } from "./podlist.ts";

export type Selector = (pod: K8sPod) => boolean;

const FIELDS: Record<string, (p: K8sPod) => string> = {
  "metadata.name": (p) => p.metadata.name,
  "metadata.namespace": (p) => p.metadata.namespace,
  "spec.nodeName": (p) => p.spec.nodeName ?? "",
  "status.phase": (p) => p.status.phase ?? "",
};

/** fieldSelector: `a=b`, `a==b`, `a!=b`, comma-separated (AND). Throws a message for 400. */
export function parseFieldSelector(s: string): Selector {
  const terms = s
    .split(",")
    .filter((t) => t.trim() !== "")
    .map((t) => {
      const m = /^([^!=]+)(==|!=|=)(.*)$/.exec(t.trim());
      if (!m) throw new Error(`invalid field selector: '${t}'`);
      const get = FIELDS[m[1]!];
      if (!get) throw new Error(`field label not supported: ${m[1]}`);
      const want = m[3]!;
      return m[2] === "!=" ? (p: K8sPod) => get(p) !== want : (p: K8sPod) => get(p) === want;
    });
  return (p) => terms.every((f) => f(p));
}

/** labelSelector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma-separated. */
export function parseLabelSelector(s: string): Selector {
  const terms: Selector[] = [];
  const parts = s.match(/(?:[^,(]|\([^)]*\))+/g) ?? [];
  for (const raw of parts) {
    const t = raw.trim();
    if (t === "") continue;
    let m: RegExpExecArray | null;
    const labels = (p: K8sPod) => p.metadata.labels ?? {};
    if ((m = /^!\s*([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((p) => !Object.hasOwn(labels(p), k));
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const k = m[1]!;
      const set = new Set(m[3]!.split(",").map((v) => v.trim()));
      const neg = m[2] === "notin";
      terms.push((p) => {
        const v = labels(p)[k];
        return neg ? v === undefined || !set.has(v) : v !== undefined && set.has(v);
      });
    } else if ((m = /^([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)$/.exec(t))) {
      const k = m[1]!;
      const v = m[3]!;
      terms.push(m[2] === "!=" ? (p) => labels(p)[k] !== v : (p) => labels(p)[k] === v);
    } else if ((m = /^([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((p) => Object.hasOwn(labels(p), k));
    } else throw new Error(`unable to parse requirement: ${t}`);
  }
  return (p) => terms.every((f) => f(p));
}

/** The node of a selector that is exactly `spec.nodeName=<node>` (the fake indexes pods by node), else null. */
export function nodeOfSelector(s: string): string | null {
  const m = /^spec\.nodeName(?:==|=)([^,!=]*)$/.exec(s.trim());
  return m ? m[1]! : null;
}
