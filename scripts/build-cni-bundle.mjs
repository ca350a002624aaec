#!/usr/bin/env node
/**
 * Bundles sluice-cni (src/cni/main.ts and everything it imports, the lazily
 * imported datapath modules included) into one CommonJS file:
 *
 *   dist/bundle/cni/sluice-cni.cjs
 *
 * A runtime execs the plugin for every ADD/DEL/CHECK, so node's start-up and
 * module loading are most of an invocation: one file is one read and one
 * compile instead of resolving and loading ~25 ESM modules (see the
 * "Performance" section of docs/cni.md for numbers). Installed by
 * `sluice-cni install` when present and built from the current sources
 * (dist/bundle/cni/sluice-cni.inputs.json lists each input's sha256).
 *
 * The file sits three directories below the repository root, like the
 * modules of dist/src/<area>/, so the paths those modules derive from
 * import.meta.url (build/bpf/lxc.o, native/build/Release/sluice_bpf.node)
 * resolve the same from the bundle; import.meta.url becomes the bundle's own
 * file URL. The native addon stays outside: it is require()d by absolute
 * path at run time.
 *
 *   node scripts/build-cni-bundle.mjs
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/bundle/cni/sluice-cni.cjs');
const inputsFile = outfile.replace(/\.cjs$/, '.inputs.json');
const META_URL = '__sluice_import_meta_url';

const result = await build({
  absWorkingDir: root, // metafile paths relative to the repository root
  entryPoints: ['src/cni/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Only node: builtins may stay outside; an npm package in the plugin's graph is a mistake to see here.
  packages: 'bundle',
  define: { 'import.meta.url': META_URL },
  banner: { js: `'use strict';\nconst ${META_URL} = require('node:url').pathToFileURL(__filename).href;` },
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  write: false,
});
// Temp + rename: a runtime may be exec'ing the plugin right now and must read a whole file.
const [out] = result.outputFiles;
mkdirSync(dirname(outfile), { recursive: true });
const writeAtomic = (path, data, mode) => {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
};
// What the bundle was built from (path → sha256), so that the installer can
// tell a bundle of the current sources from a stale one. Inputs first: a
// reader that sees the new bundle sees its inputs.
const inputs = Object.fromEntries(Object.keys(result.metafile.inputs).sort()
  .map((rel) => [rel, createHash('sha256').update(readFileSync(join(root, rel))).digest('hex')]));
writeAtomic(inputsFile, `${JSON.stringify({ bundle: 'sluice-cni.cjs', inputs }, null, 1)}\n`, 0o644);
writeAtomic(outfile, out.contents, 0o755);
const bytes = out.contents.length;
process.stdout.write(`cni bundle: ${outfile} (${Object.keys(inputs).length} modules, ${bytes} bytes)\n`);
