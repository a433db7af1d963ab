//! The supported shapes compile and dispatch to the right handler: commands
//! with and without payload, unit commands, `()` replies, read-only queries,
//! a command enum with a restricted visibility, and derived event names.
//! (Misuse is in `ui/`; what the code looks like is in the snapshots.)

use nexus_core::testkit::given;
use nexus_core::{Aggregate, CommandOf, DomainEvent, Effect, Handles, aggregate};
use serde::{Deserialize, Serialize};

/// A light with a brightness: exercises every supported command shape.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Light {
    on: bool,
    level: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "light")]
enum LightEvent {
    SwitchedOn,
    Dimmed(u8),
    #[event(name = "light.off", version = 3)]
    SwitchedOff {
        at_level: u8,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum LightError {
    #[error("the light is already {0}")]
    Already(&'static str),
    #[error("level {0} is above 100")]
    TooBright(u8),
}

/// A unit command replying `()`.
#[derive(Debug)]
struct SwitchOn;
/// A unit command replying a value.
#[derive(Debug)]
struct SwitchOff;
/// A tuple command with payload.
#[derive(Debug)]
struct Dim(u8);
/// A braced command with payload, read-only, replying a struct.
#[derive(Debug)]
struct Status {
    verbose: bool,
}

#[derive(Debug, PartialEq)]
struct Report {
    on: bool,
    level: Option<u8>,
}

mod commands {
    /// A command named through a path.
    #[derive(Debug)]
    pub struct Toggle;
}

#[aggregate(
    name = "light",
    event = LightEvent,
    error = LightError,
    commands(SwitchOn, SwitchOff, Dim, Status, commands::Toggle),
    vis = pub(crate),
)]
impl Light {
    #[handle]
    fn switch_on(&self, _: &SwitchOn) -> Result<Effect<Self>, LightError> {
        if self.on {
            return Err(LightError::Already("on"));
        }
        Ok(Effect::persist(LightEvent::SwitchedOn))
    }

    #[handle]
    fn switch_off(&self, _: &SwitchOff) -> Result<Effect<Self, bool>, LightError> {
        if !self.on {
            return Err(LightError::Already("off"));
        }
        Ok(Effect::persist(LightEvent::SwitchedOff {
            at_level: self.level,
        })
        .then_reply(|s: &Self| s.on))
    }

    #[handle]
    fn dim(&self, Dim(level): &Dim) -> Result<Effect<Self, u8>, LightError> {
        if *level > 100 {
            return Err(LightError::TooBright(*level));
        }
        Ok(Effect::persist(LightEvent::Dimmed(*level)).then_reply(|s: &Self| s.level))
    }

    #[handle]
    fn status(&self, query: &Status) -> Result<Effect<Self, Report>, LightError> {
        let verbose = query.verbose;
        Ok(Effect::none().then_reply(move |s: &Self| Report {
            on: s.on,
            level: verbose.then_some(s.level),
        }))
    }

    #[handle]
    fn toggle(&self, _: &commands::Toggle) -> Result<Effect<Self, ()>, LightError> {
        Ok(Effect::persist(if self.on {
            LightEvent::SwitchedOff {
                at_level: self.level,
            }
        } else {
            LightEvent::SwitchedOn
        }))
    }

    /// Not a handler: plain methods stay where they are.
    fn is_dark(&self) -> bool {
        !self.on || self.level == 0
    }

    #[apply]
    fn apply(&mut self, event: &LightEvent) {
        match event {
            LightEvent::SwitchedOn => self.on = true,
            LightEvent::Dimmed(level) => self.level = *level,
            LightEvent::SwitchedOff { .. } => self.on = false,
        }
    }
}

#[test]
fn the_aggregate_impl_carries_the_declared_name_and_types() {
    assert_eq!(<Light as Aggregate>::NAME, "light");
    let _: fn(&Light, &LightCommand) -> Result<Effect<Light>, LightError> = Light::handle;
    assert!(Light::default().is_dark());
}

#[test]
fn a_unit_command_replying_unit_persists_its_event() {
    given::<Light>([])
        .ask(SwitchOn)
        .then_expect_events([LightEvent::SwitchedOn])
        .then_expect_reply(());
    given::<Light>([LightEvent::SwitchedOn])
        .ask(SwitchOn)
        .then_expect_rejection(LightError::Already("on"));
}

#[test]
fn each_command_gets_the_reply_type_its_handler_names() {
    let on = [LightEvent::SwitchedOn];
    given::<Light>(on.clone())
        .ask(SwitchOff)
        .then_expect_reply(false);
    given::<Light>(on.clone())
        .ask(Dim(40))
        .then_expect_events([LightEvent::Dimmed(40)])
        .then_expect_reply(40);
    given::<Light>(on)
        .ask(Dim(101))
        .then_expect_rejection(LightError::TooBright(101));
}

#[test]
fn a_read_only_query_persists_nothing_and_replies_from_the_state() {
    let history = [LightEvent::SwitchedOn, LightEvent::Dimmed(7)];
    given::<Light>(history.clone())
        .ask(Status { verbose: true })
        .then_expect_no_events()
        .then_expect_reply(Report {
            on: true,
            level: Some(7),
        });
    given::<Light>(history)
        .ask(Status { verbose: false })
        .then_expect_reply(Report {
            on: true,
            level: None,
        });
}

#[test]
fn the_enum_dispatch_reaches_the_same_handler_as_the_typed_one() {
    let history = [LightEvent::SwitchedOn, LightEvent::Dimmed(9)];
    given::<Light>(history.clone())
        .when(commands::Toggle)
        .then_expect_events([LightEvent::SwitchedOff { at_level: 9 }]);
    given::<Light>(history.clone())
        .when(Dim(3))
        .then_expect_events([LightEvent::Dimmed(3)]);
    given::<Light>(history)
        .when(SwitchOn)
        .then_expect_rejection(LightError::Already("on"));
    assert!(matches!(
        LightCommand::from(Dim(5)),
        LightCommand::Dim(Dim(5))
    ));
}

#[test]
fn every_declared_command_is_sealed_to_its_aggregate() {
    fn into_enum<C: CommandOf<Light>>(command: C) -> LightCommand {
        command.into()
    }
    fn reply_of<C>(_: &C) -> &'static str
    where
        Light: Handles<C>,
    {
        std::any::type_name::<<Light as Handles<C>>::Reply>()
    }
    assert!(matches!(into_enum(SwitchOff), LightCommand::SwitchOff(_)));
    assert!(matches!(
        into_enum(Status { verbose: false }),
        LightCommand::Status(_)
    ));
    assert_eq!(
        reply_of(&Status { verbose: true }),
        std::any::type_name::<Report>()
    );
    assert_eq!(reply_of(&commands::Toggle), "()");
}

#[test]
fn event_names_default_to_the_prefixed_snake_case_variant_and_can_be_overridden() {
    assert_eq!(
        LightEvent::EVENT_TYPES,
        ["light.switched_on", "light.dimmed", "light.off"]
    );
    assert_eq!(LightEvent::SwitchedOn.event_type(), "light.switched_on");
    assert_eq!(LightEvent::Dimmed(1).event_type(), "light.dimmed");
    assert_eq!(
        LightEvent::SwitchedOff { at_level: 1 }.event_type(),
        "light.off"
    );
    assert_eq!(LightEvent::SwitchedOff { at_level: 1 }.schema_version(), 3);
    assert_eq!(LightEvent::schema_version_of("light.dimmed"), 1);
    assert_eq!(LightEvent::schema_version_of("light.off"), 3);
}

#[derive(Clone, Debug, Serialize, Deserialize, DomainEvent)]
#[event(require_names)]
enum Explicit {
    #[event(name = "ledger.opened")]
    Opened,
    #[event(name = "ledger.posted", version = 2)]
    Posted(i64),
}

#[test]
fn required_names_are_used_verbatim() {
    assert_eq!(Explicit::EVENT_TYPES, ["ledger.opened", "ledger.posted"]);
    assert_eq!(Explicit::Posted(1).event_type(), "ledger.posted");
    assert_eq!(Explicit::Posted(1).schema_version(), 2);
    assert_eq!(Explicit::Opened.schema_version(), 1);
}

#[derive(Clone, Debug, Serialize, Deserialize, DomainEvent)]
enum Unprefixed {
    AccountOpened,
}

#[test]
fn without_a_prefix_the_name_is_the_snake_case_variant() {
    assert_eq!(Unprefixed::AccountOpened.event_type(), "account_opened");
}

/// A module whose `Result` is an alias with the error built in.
mod aliased {
    use nexus_core::testkit::given;
    use nexus_core::{Effect, aggregate};

    use super::{LightError, LightEvent};

    type Result<T> = std::result::Result<T, LightError>;

    #[derive(Debug, Default)]
    pub(super) struct Lamp {
        on: bool,
    }

    #[derive(Debug)]
    pub(super) struct Flip;

    #[aggregate(name = "lamp", event = LightEvent, error = LightError, commands(Flip), vis = pub(super))]
    impl Lamp {
        #[handle]
        fn flip(&self, _: &Flip) -> Result<Effect<Self, bool>> {
            let event = if self.on {
                LightEvent::SwitchedOff { at_level: 0 }
            } else {
                LightEvent::SwitchedOn
            };
            Ok(Effect::persist(event).then_reply(|lamp: &Self| lamp.on))
        }

        #[apply]
        fn apply(&mut self, event: &LightEvent) {
            self.on = matches!(event, LightEvent::SwitchedOn);
        }
    }

    #[test]
    fn a_result_alias_with_one_argument_is_read_as_the_handler_return_type() {
        given::<Lamp>([]).ask(Flip).then_expect_reply(true);
        given::<Lamp>([LightEvent::SwitchedOn])
            .ask(Flip)
            .then_expect_reply(false);
    }
}
