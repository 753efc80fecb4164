import { generateScenarioTests } from '../generate.js';

generateScenarioTests('handleRelease/ucx');
