import { readFile } from 'node:fs/promises';
import { db } from './db.js';

const SECRET = 'server-only-secret';

export async function getData(ctx) {
  return { items: await db.list(), secret: SECRET };
}

export const saveData = async (ctx, id, payload) => {
  await readFile('/etc/hostname');
  return { saved: true, id, payload };
};
