// A throwaway private PKI made with the system `openssl` (as a cluster's CA would be): a CA, a
// server certificate for 127.0.0.1/localhost signed by it, a client certificate signed by it,
// and a self-signed certificate (a kubelet's default serving cert). Used by the HTTPS fakes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: CertPair;
  /** Signed by the CA; SAN IP:127.0.0.1, DNS:localhost. */
  server: CertPair;
  /** Signed by the CA; CN=system:node:test-node, O=system:nodes. */
  client: CertPair;
  /** Self-signed server cert (not from the CA), SAN IP:127.0.0.1, DNS:localhost. */
  selfSigned: CertPair;
  /** A second, unrelated CA (to prove verification fails against the wrong CA). */
  otherCa: CertPair;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

function pair(dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

const SERVER_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
const CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";

function makeCa(dir: string, name: string, cn: string): void {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
}

function makeSigned(dir: string, name: string, subject: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
}

/** Creates the PKI in a fresh temp dir (about 100 ms of openssl). */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "pk-pki-"));
  makeCa(dir, "ca", "pipekit-test-cluster-ca");
  makeCa(dir, "other-ca", "some-other-ca");
  makeSigned(dir, "server", "/CN=kube-apiserver", SERVER_EXT);
  makeSigned(dir, "client", "/O=system:nodes/CN=system:node:test-node", CLIENT_EXT);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1@kubelet", "-keyout", "self.key", "-out", "self.crt", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], dir);
  return {
    dir,
    ca: pair(dir, "ca"),
    otherCa: pair(dir, "other-ca"),
    server: pair(dir, "server"),
    client: pair(dir, "client"),
    selfSigned: pair(dir, "self"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
