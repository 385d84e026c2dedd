export { Fitter, FaceFit, FitterError, Tracker } from './fitter.js';
export type { CreateOptions, FitOptions, PhotoInput, AdapterInfo, FitProgress, LoadProgress, LossValues, RgbaImage, PhotoSummary, TrackOptions, FrameInput, TrackedFrame } from './fitter.js';
