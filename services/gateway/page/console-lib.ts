/**
 * Everything the console page imports that is not its own code, bundled into one ES module
 * (dist/public/console-lib.js) by scripts/build-page.mjs: the UI library (preact + htm, no build
 * step for the page's own modules) and the core's fold, so the page folds events with the same
 * rules as the server rather than a copy of them.
 */
export { h, render } from 'preact';
export { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
export { default as htm } from 'htm';
export { foldTask, initialTaskState, isTerminalStatus, reduceTask } from '@nodebatch/progress/browser';
