//! A WASI command, not a plugin: a valid component that lacks the plugin world's exports, so `wssgate check` must
//! name the missing export.

fn main() {
    println!("I am a command, not a wssgate plugin");
}
