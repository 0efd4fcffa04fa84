// Starts `stratlang lsp` (the language server of the installed stratlang) for .strat files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("stratlang").get("command");
  client = new LanguageClient("stratlang", "stratlang", { command, args },
                              { documentSelector: [{ language: "strat" }] });
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
