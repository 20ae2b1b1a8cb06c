use ferrotp::prelude::*;

struct Cache<T> {
    items: Vec<T>,
}

#[gen_server]
impl<T: Send + 'static> Cache<T> {
    async fn init(_: ()) -> Self {
        Cache { items: Vec::new() }
    }

    #[install("len")]
    async fn len(&mut self) -> usize {
        self.items.len()
    }
}

fn main() {}
