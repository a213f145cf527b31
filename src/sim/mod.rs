//! The simulator of the five agency systems (work in progress on branch sim).
