import { generateScenarioTests } from '../generate.js';

generateScenarioTests('slotContention');
