#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| handover_fuzz::checks::bot_config(data));
