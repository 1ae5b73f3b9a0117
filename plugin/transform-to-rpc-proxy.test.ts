import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@babel/parser';
import { describe, expect, it } from 'vitest';
import { scanExports } from '../devserver/scan/scan-exports.js';
import { transformToRpcProxy } from './transform-to-rpc-proxy.js';

const FIXTURES = fileURLToPath(new URL('./__fixtures__/proxy/', import.meta.url));
const CLIENT = '@favn/vite-plugin-server-fns/client';

describe('transformToRpcProxy', () => {
  for (const name of readdirSync(FIXTURES)) {
    it(`turns ${name} into proxies that keep only export names`, async () => {
      const code = readFileSync(path.join(FIXTURES, name), 'utf8');
      const { exports } = scanExports(code, name);
      const out = transformToRpcProxy(code, exports, { featureId: 'feature-x', clientModule: CLIENT, file: name });

      await expect(out.code).toMatchFileSnapshot(`./__snapshots__/proxy/${name}.proxy.js`);

      // The output is plain JS that parses, and exports exactly the scanned names.
      expect(
        scanExports(out.code, 'out.js')
          .exports.map((e) => e.name)
          .sort(),
      ).toEqual(exports.map((e) => e.name).sort());
      expect(() => parse(out.code, { sourceType: 'module' })).not.toThrow();
      expect(out.exportNames).toEqual(exports.map((e) => e.name));

      // Nothing of the body or its imports survives: every line is the header, a proxy or an export.
      for (const line of out.code.split('\n').filter(Boolean)) {
        expect(line).toMatch(
          /^(\/\/ Client stand-in.*|import \{ createServerFunction as __favnServerFunction \} from "@favn\/vite-plugin-server-fns\/client";|const __favn_\w+ = \/\* @__PURE__ \*\/ __favnServerFunction\("feature-x", "[^"]+"\);|export \{ __favn_\w+ as ("[^"]+"|[\w$]+) \};)$/,
        );
      }
      const mapContent = out.map.sourcesContent?.[0] ?? '';
      for (const secret of ['server-only-secret', 'readFile', 'pool.query', 'renderToString', 'notYet']) {
        expect(out.code).not.toContain(secret);
        expect(mapContent).not.toContain(secret);
      }
    });
  }

  it('maps each proxy back to the line of the export it stands for', () => {
    const code = `import x from 'y';\n\nexport async function first() {}\n\n\nexport const second = () => x;\n`;
    const out = transformToRpcProxy(code, scanExports(code, 'a.server.js').exports, {
      featureId: 'f',
      clientModule: CLIENT,
      file: 'a.server.js',
    });
    const lines = out.code.split('\n');
    const mappings = out.map.mappings.split(';');
    const firstLine = lines.findIndex((l) => l.includes('"first"'));
    const secondLine = lines.findIndex((l) => l.includes('"second"'));
    // VLQ "AAEA"-style segments: decode just the original-line delta sum up to each line.
    expect(originalLineAt(mappings, firstLine)).toBe(2);
    expect(originalLineAt(mappings, secondLine)).toBe(5);
  });
});

/** Original (0-based) line of the first segment on generated line `target`. */
function originalLineAt(mappings: string[], target: number): number {
  let line = 0;
  for (let i = 0; i <= target; i++) {
    for (const segment of (mappings[i] ?? '').split(',').filter(Boolean)) {
      const values = decodeVlq(segment);
      if (values.length >= 3) {
        line += values[2] ?? 0;
        if (i === target) return line;
      }
    }
  }
  return -1;
}

function decodeVlq(segment: string): number[] {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = chars.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >> 1) : value >> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}
