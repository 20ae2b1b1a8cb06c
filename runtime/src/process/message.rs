//! Type-erased messages as they sit in a mailbox.

use std::{any::Any, fmt};

/// Every `Send + 'static` type is a message; the vtable also gives its type name for logs.
trait AnyMessage: Any + Send {
    fn type_name(&self) -> &'static str;
}

impl<T: Any + Send> AnyMessage for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A message of any type, as taken from a mailbox by
/// [`Context::receive_any`](crate::Context::receive_any) or inspected by a selective receive
/// predicate.
///
/// Any `Send + 'static` value can be sent to a process; a `Message` is that value boxed. Look at it
/// with [`is`](Message::is) and [`downcast_ref`](Message::downcast_ref), take it out with
/// [`downcast`](Message::downcast).
pub struct Message(Box<dyn AnyMessage>);

impl Message {
    /// Boxes a value as a message.
    pub fn new<T: Any + Send>(value: T) -> Self {
        Message(Box::new(value))
    }

    /// Whether the message holds a `T`.
    pub fn is<T: Any>(&self) -> bool {
        (*self.0).type_id() == std::any::TypeId::of::<T>()
    }

    /// The type of the value inside.
    pub(crate) fn value_type_id(&self) -> std::any::TypeId {
        (*self.0).type_id()
    }

    /// A reference to the message's value if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        (&*self.0 as &dyn Any).downcast_ref()
    }

    /// The message's value if it is a `T`, or the message back if it is not.
    ///
    /// # Errors
    ///
    /// Returns `Err(self)` when the message holds another type.
    pub fn downcast<T: Any>(self) -> Result<T, Message> {
        self.downcast_box().map(|value| *value)
    }

    /// The message's value, still boxed, if it is a `T`: for large messages held across an
    /// `.await`, where a box costs 8 bytes of the future instead of the whole value.
    ///
    /// # Errors
    ///
    /// Returns `Err(self)` when the message holds another type.
    pub fn downcast_box<T: Any>(self) -> Result<Box<T>, Message> {
        if self.is::<T>() {
            let any: Box<dyn Any> = self.0;
            match any.downcast::<T>() {
                Ok(value) => Ok(value),
                Err(_) => unreachable!("type checked by Message::is"),
            }
        } else {
            Err(self)
        }
    }

    /// The value as `Any`, for a caller that checked its type already and will not need the
    /// message back.
    pub(crate) fn into_any(self) -> Box<dyn Any + Send> {
        self.0
    }

    /// The Rust type name of the value, for logs and diagnostics.
    pub fn type_name(&self) -> &'static str {
        (*self.0).type_name()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message<{}>", self.type_name())
    }
}
