#!/usr/bin/env node
/** `sluice`: the command-line entry. Each area registers its own commands. */
import { Command } from 'commander';
import { registerLabCommands } from './lab.js';
import { registerLbCommands } from './lb.js';
import { registerObserveCommands } from './observe.js';
import { registerPolicyCommands } from './policy.js';

const program = new Command('sluice').description('Kubernetes networking with an eBPF datapath');
registerLabCommands(program);
registerPolicyCommands(program);
registerObserveCommands(program);
registerLbCommands(program);
await program.parseAsync(process.argv);
