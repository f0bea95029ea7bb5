// Compile the contracts in this folder with the pinned solc-js (npm "solc", WebAssembly, offline)
// and write build/<Name>.json (abi, bytecode, compiler settings) beside them. Tests and the
// launcher read only those JSON files, so nothing at run time needs a compiler.
//
//   npm ci && node contracts/compile.js        (or: npm run compile)
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const SOURCES = ["CGToken.sol", "Forwarder.sol"];
const EVM_VERSION = "shanghai";

const input = {
  language: "Solidity",
  sources: Object.fromEntries(SOURCES.map((f) => [f, { content: fs.readFileSync(path.join(HERE, f), "utf8") }])),
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(path.join(HERE, "build"), { recursive: true });
for (const file of SOURCES) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const artifact = {
      contractName: name,
      sourceName: `contracts/${file}`,
      compiler: { name: "solc-js", version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const out = path.join(HERE, "build", `${name}.json`);
    fs.writeFileSync(out, JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
  }
}
