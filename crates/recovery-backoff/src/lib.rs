//! Exponential backoff for the swarm recovery system (work in progress: the schedule, budget,
//! standalone retry API and strategy land in the following commits).
