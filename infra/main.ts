import { App } from 'cdktf';
import { BootstrapStack } from './bootstrap-stack';
import { InfraConfig, InfraConfigError, loadInfraConfig } from './config';
import { PlatformStack } from './platform-stack';

/** Stack ids: `cdktf.out/stacks/<id>/cdk.tf.json`. */
export const stackIds = (c: InfraConfig) => ({ bootstrap: `${c.name}-bootstrap`, platform: `${c.name}-platform` });

/** Builds the app; `outdir` defaults to cdktf's (CDKTF_OUTDIR when run by the cdktf CLI, else cdktf.out). */
export function buildApp(config: InfraConfig, outdir?: string): App {
  const app = new App(outdir ? { outdir } : {});
  const ids = stackIds(config);
  new BootstrapStack(app, ids.bootstrap, config);
  new PlatformStack(app, ids.platform, config);
  return app;
}

function main(): void {
  let config: InfraConfig;
  try {
    config = loadInfraConfig();
  } catch (e) {
    if (e instanceof InfraConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  const app = buildApp(config);
  app.synth();
  console.log(`Synthesized ${Object.values(stackIds(config)).join(', ')} into ${app.outdir}`);
}

if (require.main === module) main();
