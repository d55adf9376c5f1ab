/** `flui images <app>`: the digests rolled out for the app, read from the cluster. */
import { listImages } from '../client/index.ts';
import { appOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { formatImages, print } from './output.ts';

export interface ImagesOptions {
  app: string;
  namespace: string;
}

export function parse(input: Input): ImagesOptions {
  return appOf(input);
}

export async function run(o: ImagesOptions & Context): Promise<number> {
  const images = await listImages(o.config.kubeconfig, o.namespace, o.app);
  print(o.io, o.json, images, () =>
    images.length ? formatImages(images) : `no images rolled out for ${o.namespace}/${o.app} yet\n`,
  );
  return EXIT.ok;
}

export const command: Command<ImagesOptions> = { parse, run };
