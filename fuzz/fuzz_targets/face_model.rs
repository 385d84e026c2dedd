#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ganfit_fuzz::face_model(data));
