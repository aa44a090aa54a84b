// Slot for the local Kubernetes control plane (kube-apiserver, controller-manager, scheduler, etcd,
// kwok). Its build and start arrive with the Kubernetes issue; until then the sandbox reports it as
// not provisioned, and KUBECONFIG already points where the control plane will write its kubeconfig.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxInstance } from './instance.js';

export function kubeconfigPath(inst: SandboxInstance): string {
  return join(inst.stateDir, 'kubernetes', 'kubeconfig');
}

export async function kubernetesUp(inst: SandboxInstance): Promise<string> {
  return existsSync(kubeconfigPath(inst)) ? 'kubeconfig present' : 'not provisioned yet (the Kubernetes control plane issue)';
}

export async function kubernetesDown(_inst: SandboxInstance): Promise<boolean> {
  return false;
}
