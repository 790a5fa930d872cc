import { airflowContract } from './contract.js';

airflowContract({ major: 2 });
