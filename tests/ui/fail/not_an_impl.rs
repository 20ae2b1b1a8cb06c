use ferrotp::prelude::*;

// On a struct: one error, and the struct is still there for the code naming it.
#[gen_server]
struct Echo {
    said: String,
}

fn main() {
    let echo = Echo {
        said: String::new(),
    };
    let _ = echo.said;
}
