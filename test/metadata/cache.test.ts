import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MIRROR_ANNOTATION, PodCache } from "../../src/metadata/cache.ts";
import type { PodMeta } from "../../src/metadata/types.ts";

const pod = (uid: string, name = `pod-${uid}`, labels: Record<string, string> = {}, annotations: Record<string, string> = {}): PodMeta => ({
  uid,
  namespace: "argo",
  name,
  labels,
  annotations,
});

describe("PodCache", () => {
  test("upsert then get by UID; a new UID reusing a name never inherits the old labels", () => {
    const c = new PodCache({ deletionGraceSeconds: 60 });
    c.upsert(pod("u1", "step", { a: "1" }));
    c.markDeleted("u1", 1000);
    c.upsert(pod("u2", "step", { b: "2" }));
    expect(c.get("u1")?.labels).toEqual({ a: "1" });
    expect(c.get("u2")?.labels).toEqual({ b: "2" });
    expect(c.get("u2")?.labels.a).toBeUndefined();
    expect(c.counts()).toMatchObject({ podsKnown: 1, tombstones: 1 });
  });

  test("a tombstone is returned until swept, and swept only after the grace period", () => {
    const c = new PodCache({ deletionGraceSeconds: 60 });
    c.upsert(pod("u1"));
    c.markDeleted("u1", 10_000);
    expect(c.isDeleted("u1")).toBe(true);
    expect(c.sweep(69_999)).toBe(0);
    expect(c.get("u1")?.uid).toBe("u1");
    expect(c.sweep(70_000)).toBe(1);
    expect(c.get("u1")).toBeUndefined();
    expect(c.counts()).toEqual({ podsKnown: 0, tombstones: 0, retainedPods: 0, swept: 1 });
  });

  test("a retained file pins the tombstone; grace restarts from the last release", () => {
    const c = new PodCache({ deletionGraceSeconds: 60 });
    c.retain("u1"); // the file appeared before the pod was known
    c.upsert(pod("u1"));
    c.retain("u1");
    c.markDeleted("u1", 0);
    expect(c.sweep(1_000_000)).toBe(0);
    c.release("u1", 1_000_000);
    expect(c.sweep(2_000_000)).toBe(0); // one file still open
    c.release("u1", 2_000_000);
    expect(c.counts().retainedPods).toBe(0);
    expect(c.sweep(2_059_999)).toBe(0);
    expect(c.get("u1")).toBeDefined();
    expect(c.sweep(2_060_000)).toBe(1);
    expect(c.get("u1")).toBeUndefined();
  });

  test("release without retain is ignored (no negative counts)", () => {
    const c = new PodCache({ deletionGraceSeconds: 0 });
    c.release("x", 0);
    c.upsert(pod("x"));
    c.retain("x");
    c.release("x", 0);
    c.release("x", 0);
    c.markDeleted("x", 0);
    expect(c.sweep(0)).toBe(1);
  });

  test("replaceAll: absent pods become tombstones, present ones are revived, no duplicates", () => {
    const c = new PodCache({ deletionGraceSeconds: 60 });
    c.replaceAll([pod("a"), pod("b"), pod("c")], 0);
    c.markDeleted("c", 0);
    c.replaceAll([pod("b"), pod("c"), pod("d"), pod("d")], 5);
    expect(c.size).toBe(4);
    expect(c.isDeleted("a")).toBe(true);
    expect(c.isDeleted("b")).toBe(false);
    expect(c.isDeleted("c")).toBe(false);
    expect(c.counts()).toMatchObject({ podsKnown: 3, tombstones: 1 });
  });

  test("onChange fires for appearance, change, deletion and sweep — not for identical upserts", () => {
    const c = new PodCache({ deletionGraceSeconds: 0 });
    const seen: string[] = [];
    c.onChange((uid) => seen.push(uid));
    c.upsert(pod("a", "n", { x: "1" }));
    c.upsert(pod("a", "n", { x: "1" }));
    c.upsert(pod("a", "n", { x: "2" }));
    c.markDeleted("a", 0);
    c.markDeleted("a", 0);
    c.sweep(0);
    expect(seen).toEqual(["a", "a", "a", "a"]);
  });

  test("labels that change give a new frozen object; the old snapshot stays as it was", () => {
    const c = new PodCache({ deletionGraceSeconds: 60 });
    c.upsert(pod("a", "n", { x: "1" }));
    const before = c.get("a")!;
    c.upsert(pod("a", "n", { x: "1", y: "2" }));
    const after = c.get("a")!;
    expect(after).not.toBe(before);
    expect(before.labels).toEqual({ x: "1" });
    expect(after.labels).toEqual({ x: "1", y: "2" });
    expect(Object.isFrozen(after.labels)).toBe(true);
  });

  test("a static pod is found by its config hash (the id in its log path)", () => {
    const c = new PodCache({ deletionGraceSeconds: 0 });
    const seen: string[] = [];
    c.onChange((uid) => seen.push(uid));
    c.upsert(pod("api-uid", "etcd-node1", { component: "etcd" }, { [MIRROR_ANNOTATION]: "f00dcafe" }));
    expect(c.get("f00dcafe")?.name).toBe("etcd-node1");
    expect(seen).toEqual(["api-uid", "f00dcafe"]);
    c.retain("f00dcafe");
    c.markDeleted("f00dcafe", 0);
    expect(c.sweep(10)).toBe(0); // pinned through the alias
    c.release("f00dcafe", 10);
    expect(c.sweep(10)).toBe(1);
    expect(c.get("f00dcafe")).toBeUndefined();
  });

  test("property: after any sequence of operations, counts agree with the entries", () => {
    const uid = fc.constantFrom("a", "b", "c", "d");
    const op = fc.oneof(
      fc.record({ t: fc.constant("upsert" as const), uid, v: fc.nat(3) }),
      fc.record({ t: fc.constant("delete" as const), uid }),
      fc.record({ t: fc.constant("replace" as const), uids: fc.subarray(["a", "b", "c", "d"]) }),
      fc.record({ t: fc.constant("retain" as const), uid }),
      fc.record({ t: fc.constant("release" as const), uid }),
      fc.record({ t: fc.constant("sweep" as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const c = new PodCache({ deletionGraceSeconds: 1 });
        const retained = new Map<string, number>();
        let now = 0;
        for (const o of ops) {
          now += 400;
          if (o.t === "upsert") c.upsert(pod(o.uid, "n", { v: String(o.v) }));
          else if (o.t === "delete") c.markDeleted(o.uid, now);
          else if (o.t === "replace") c.replaceAll(o.uids.map((u) => pod(u)), now);
          else if (o.t === "retain") {
            c.retain(o.uid);
            retained.set(o.uid, (retained.get(o.uid) ?? 0) + 1);
          } else if (o.t === "release") {
            c.release(o.uid, now);
            retained.set(o.uid, Math.max(0, (retained.get(o.uid) ?? 0) - 1));
          } else {
            const pinned = [...retained].filter(([u, n]) => n > 0 && c.isDeleted(u)).map(([u]) => u);
            c.sweep(now);
            // A pinned tombstone is never swept.
            if (pinned.some((u) => c.get(u) === undefined)) return false;
          }
          let live = 0;
          let dead = 0;
          for (const e of c.pods()) e.deleted ? dead++ : live++;
          const k = c.counts();
          if (k.podsKnown !== live || k.tombstones !== dead) return false;
        }
        c.sweep(now + 10_000);
        for (const e of c.pods()) if (e.deleted && (retained.get(e.pod.uid) ?? 0) === 0) return false;
        return true;
      }),
    );
  });
});
