import { generateScenarioTests } from '../generate.js';

generateScenarioTests('handleRelease/refusing');
