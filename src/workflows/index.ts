/** Workflows registered by the Flui worker. */
export { deployWorkflow } from './deploy.ts';
export { buildWorkflow } from './build.ts';
export { readBuildLogWorkflow } from './logs.ts';
