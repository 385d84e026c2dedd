export { Fitter, FaceFit, FitterError } from './fitter.js';
export type { CreateOptions, FitOptions, PhotoInput, AdapterInfo, FitProgress, LoadProgress, LossValues, RgbaImage, PhotoSummary } from './fitter.js';
