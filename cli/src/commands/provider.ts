// `gpufed provider reclaim|release`: the owner of a provider's cluster takes a GPU node back for
// their own use (gaming, own work) and later returns it to the federation. Runs against the
// provider's own cluster (the owner's kubeconfig), never the registry.
import * as k8s from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { RECLAIM_ANNOTATION } from '../../../operator/src/agent/gpunode.js';
import { loadKubeConfig } from '../../../operator/src/kube/client.js';
import { explain, isNotFound } from '../../../operator/src/kube/errors.js';
import { durationArg, UsageError } from '../output.js';

async function annotate(kubeconfig: string | undefined, node: string, value: string | null): Promise<void> {
  const core = loadKubeConfig(kubeconfig).makeApiClient(k8s.CoreV1Api);
  try {
    await core.patchNode({ name: node, body: { metadata: { annotations: { [RECLAIM_ANNOTATION]: value } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  } catch (e) {
    if (isNotFound(e)) throw new UsageError(`No node ${node} in this cluster; list them with: kubectl get nodes`, { cause: e });
    throw explain(`Updating node ${node}`, e);
  }
}

export function providerCommand(): Command {
  const provider = new Command('provider').description("Manage this provider's GPU nodes (run by the owner, against the provider's own cluster)");
  provider
    .command('reclaim')
    .description('Take a GPU node back: no new jobs land on it, running jobs stop when the grace period ends (reason Reclaimed)')
    .argument('<node>', 'the node to take back')
    .addOption(new Option('--grace <duration>', 'how long running jobs may go on, e.g. 5m, 30s or 0').default(300_000, '5m').argParser(durationArg('--grace')))
    .option('--kubeconfig <file>', "the provider cluster's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .addHelpText('after', '\nExamples:\n  $ gpufed provider reclaim gaming-pc --grace 5m\n  $ gpufed provider reclaim gaming-pc --grace 0   # stop its jobs now')
    .action(async (node: string, o: { grace: number; kubeconfig?: string }) => {
      const deadline = new Date(Date.now() + o.grace).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await annotate(o.kubeconfig, node, deadline);
      process.stdout.write(`Reclaimed ${node}: no new gpufed jobs will start there; running jobs stop at ${deadline}.\nGive it back with: gpufed provider release ${node}\n`);
    });
  provider
    .command('release')
    .description('Give a reclaimed node back to the federation')
    .argument('<node>', 'the node to give back')
    .option('--kubeconfig <file>', "the provider cluster's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .addHelpText('after', '\nExample:\n  $ gpufed provider release gaming-pc')
    .action(async (node: string, o: { kubeconfig?: string }) => {
      await annotate(o.kubeconfig, node, null);
      process.stdout.write(`Released ${node}: it takes gpufed jobs again.\n`);
    });
  return provider;
}
