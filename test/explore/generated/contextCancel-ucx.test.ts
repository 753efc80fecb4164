import { generateScenarioTests } from '../generate.js';

generateScenarioTests('contextCancel/ucx');
