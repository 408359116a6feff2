// The gpufed API: types generated from crds/*.yaml, and the condition vocabulary beside them.
export * from './types.generated.js';
export * from './conditions.js';
export * from './names.js';
