// What a developer writes after `npm install @cairn/client`: typed, promise-based, offline.
import { Cairn, CairnError, type DocHandle } from '@cairn/client';

interface Note {
  title: string;
  tags: string[];
  views: number;
}

const result = document.getElementById('result')!;

async function main(): Promise<string> {
  const repo = await Cairn.open({ name: 'vite-app' });
  const note: DocHandle<Note> = await repo.create<Note>({ title: 'Hello', tags: [], views: 0 });
  await note.change((d) => {
    d.tags.push('vite');
    d.title = 'Hello from Vite';
  });
  await note.splice(['title'], 0, 5, 'Hi');
  const found = await repo.find<Note>(note.id);
  const value = found?.value();
  if (value?.title !== 'Hi from Vite' || value.tags[0] !== 'vite') throw new Error(`unexpected ${JSON.stringify(value)}`);
  const pending = (await repo.outbox()).length;
  try {
    await repo.sync();
  } catch (e) {
    if (!(e instanceof CairnError) || e.code !== 'E_NO_SERVER') throw e;
  }
  return `ok: ${value.title}, ${pending} operations queued`;
}

main().then(
  (text) => {
    result.textContent = text;
    result.dataset.state = 'ok';
  },
  (e) => {
    result.textContent = `${e?.code ?? 'error'}: ${e?.message ?? e}`;
    result.dataset.state = 'error';
  },
);
