/** Bundles browser code with Vite (the project's own bundler) in memory: the kit's size budget and the kit's test page. */
import { build, type Rolldown } from 'vite';

export async function bundle(entry: string, options: { minify: boolean; format: 'es' | 'iife' }): Promise<string> {
  const out = (await build({
    configFile: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
    build: {
      write: false,
      minify: options.minify,
      target: 'es2022',
      lib: { entry, formats: [options.format], name: 'bundle', fileName: 'bundle' },
      rollupOptions: { external: [] },
    },
  })) as Rolldown.RolldownOutput | Rolldown.RolldownOutput[];
  const outputs = Array.isArray(out) ? out : [out];
  const chunk = outputs.flatMap((o) => o.output).find((c) => c.type === 'chunk');
  if (chunk?.type !== 'chunk') throw new Error(`bundling ${entry} produced no code`);
  return chunk.code;
}
