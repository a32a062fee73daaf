//! uniffi's binding generator at the version the library is built with (versions must
//! match). Library mode:
//! `cargo run -p electrum-spv-bindgen -- generate --library target/debug/libelectrum_spv_ffi.so -l kotlin -o out`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
