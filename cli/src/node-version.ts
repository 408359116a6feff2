// The Node.js version gpufed needs, checked before anything heavier is imported (no imports here).
export const REQUIRED_NODE_MAJOR = 26;

/** An error message when `version` (like process.version) is too old, else undefined. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `gpufed needs Node.js ${REQUIRED_NODE_MAJOR} or newer, and this is ${version}.\n` +
    `Use the project's Node: run it through make, \`. .gpufed/dev/env\`, or export PATH="$(tools/node.sh):$PATH".`
  );
}
