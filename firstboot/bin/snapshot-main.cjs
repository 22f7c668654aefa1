// Entry of the V8 startup snapshot that `syntropy-firstboot` starts from (build-node-snapshot
// builds it on the instance's own node at bake time). Debian's nodejs is built without Node's
// own startup snapshot and code cache (process.config.variables.node_use_node_snapshot and
// node_use_node_code_cache are false), so every start compiles Node's bootstrap JavaScript:
// ~1.7 s of CPU at 1 vCPU on QEMU TCG, before our code runs. A user-land snapshot holds that
// bootstrap already done (Node's documentation: `node --build-snapshot`, v8.startupSnapshot).
//
// Nothing of the program is in the snapshot: it holds only Node's bootstrap and this function,
// which imports the program's ES module at run time exactly as `node syntropy-firstboot.mjs`
// would. So no value (environment, terminal, time, random state) is captured at bake time.
// Dynamic import() needs the main context's loader, which a snapshot's main function lacks
// unless asked for (vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER, Node >= 20.12).
'use strict';
const v8 = require('node:v8');
const path = require('node:path');

const entry = path.join(__dirname, 'syntropy-firstboot.mjs');

v8.startupSnapshot.setDeserializeMainFunction(() => {
  const vm = require('node:vm');
  // As `node syntropy-firstboot.mjs args...` sees it: argv[1] is the script.
  process.argv.splice(1, 0, entry);
  const load = new vm.Script(`import(${JSON.stringify(entry)})`, {
    filename: path.join(__dirname, 'snapshot-main.cjs'),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  load.runInThisContext().catch((e) => {
    process.stderr.write(`syntropy-firstboot: cannot load ${entry}: ${e && e.message}\n`);
    process.exitCode = 1;
  });
});
