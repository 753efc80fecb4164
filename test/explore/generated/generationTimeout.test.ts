import { generateScenarioTests } from '../generate.js';

generateScenarioTests('generationTimeout');
