// Which pods' files are read (docs/metadata.md "Selection", docs/pipeline.md): pure, no I/O.
//
//   unknown       — no metadata yet: hold the file (opened, not read) up to waitForMetadataSeconds.
//   not-selected  — known, lacks the selector label: never read; its files count as skipped.
//   incomplete    — selected but a label/annotation the chain needs is missing or empty: hold the
//                   same way, since Argo and Pipekit may add labels after the pod starts.
//   select        — read and enrich.
import type { Config } from "../config/schema.ts";
import type { PodMeta } from "./types.ts";

export interface SelectionRules {
  /** A pod is selected when it carries this label (any value, even empty, as `kubectl -l key`). */
  selectorLabel: string;
  /** Label keys the chain reads (from pipeline.fields); a missing or empty one makes a pod incomplete. */
  requiredLabels: readonly string[];
  /** Annotation keys the chain reads. */
  requiredAnnotations: readonly string[];
}

export type PodDecision =
  | { kind: "select" }
  | { kind: "unknown" }
  | { kind: "not-selected" }
  /** `missing` entries read `label:<key>` or `annotation:<key>`. */
  | { kind: "incomplete"; missing: string[] };

const SELECT: PodDecision = Object.freeze({ kind: "select" });
const UNKNOWN: PodDecision = Object.freeze({ kind: "unknown" });
const NOT_SELECTED: PodDecision = Object.freeze({ kind: "not-selected" });

export function decidePod(pod: PodMeta | undefined, rules: SelectionRules): PodDecision {
  if (pod === undefined) return UNKNOWN;
  if (!Object.hasOwn(pod.labels, rules.selectorLabel)) return NOT_SELECTED;
  let missing: string[] | undefined;
  for (const key of rules.requiredLabels) {
    if (!pod.labels[key]) (missing ??= []).push(`label:${key}`);
  }
  for (const key of rules.requiredAnnotations) {
    if (!pod.annotations[key]) (missing ??= []).push(`annotation:${key}`);
  }
  return missing ? { kind: "incomplete", missing } : SELECT;
}

/** The rules from the effective config: selector label plus every key pipeline.fields reads. */
export function selectionRulesFromConfig(config: Pick<Config, "metadata" | "pipeline">): SelectionRules {
  const labels = new Set<string>();
  const annotations = new Set<string>();
  for (const source of Object.values(config.pipeline.fields)) {
    if ("label" in source) labels.add(source.label);
    else annotations.add(source.annotation);
  }
  return {
    selectorLabel: config.metadata.selectorLabel,
    requiredLabels: [...labels],
    requiredAnnotations: [...annotations],
  };
}
