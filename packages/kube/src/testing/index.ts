export { instantClock } from './instant-clock.js';
