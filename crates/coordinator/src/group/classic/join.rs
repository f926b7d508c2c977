//! The join phase of the classic protocol: JoinGroup, static members replacing their
//! earlier selves (KIP-345), and completing a rebalance's join with the chosen protocol.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::{
    take_join, Delivery, Group, GroupState, JoinRequest, JoinResponse, Member, Outcome,
    SyncResponse,
};

impl Group {
    pub(super) fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    /// JoinGroup; returns the member id the caller joins under and the outcome.
    pub fn join(&mut self, now: u64, mut request: JoinRequest) -> (String, Outcome<JoinResponse>) {
        let requested = request.member_id.clone();
        let error = |code| {
            (
                requested.clone(),
                Outcome {
                    reply: Some(JoinResponse::error(code, &requested)),
                    deliveries: vec![],
                },
            )
        };
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return error(ResponseError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return error(ResponseError::InconsistentGroupProtocol);
        }
        if self.state != GroupState::Empty || !self.members.is_empty() {
            let same_type = self.protocol_type.as_deref() == Some(request.protocol_type.as_str());
            let shared = request.protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .filter(|m| m.id != request.member_id)
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            });
            if !same_type || !shared {
                return error(ResponseError::InconsistentGroupProtocol);
            }
        }
        if let Some(instance) = request.group_instance_id.clone() {
            match self.instances.get(&instance).cloned() {
                Some(holder) if request.member_id.is_empty() => {
                    return self.replace_static_member(now, holder, request);
                }
                Some(holder) if holder != request.member_id => {
                    return error(ResponseError::FencedInstanceId)
                }
                Some(_) => {}
                None if request.member_id.is_empty() => {
                    // A static member needs no KIP-394 round trip: its instance id is its identity.
                    request.member_id = Self::new_member_id(&request.client_id);
                    self.pending_members
                        .insert(request.member_id.clone(), now + request.session_timeout_ms);
                    self.instances.insert(instance, request.member_id.clone());
                }
                None => {}
            }
        }
        let mut member_id = request.member_id.clone();
        if member_id.is_empty() {
            if self.members.len() >= self.config.max_size {
                return error(ResponseError::GroupMaxSizeReached);
            }
            member_id = Self::new_member_id(&request.client_id);
            if request.require_known_member_id {
                self.pending_members
                    .insert(member_id.clone(), now + request.session_timeout_ms);
                let reply = JoinResponse::error(ResponseError::MemberIdRequired, &member_id);
                return (
                    member_id,
                    Outcome {
                        reply: Some(reply),
                        deliveries: vec![],
                    },
                );
            }
        } else if !self.members.contains_key(&member_id)
            && self.pending_members.remove(&member_id).is_none()
        {
            return error(ResponseError::UnknownMemberId);
        }
        let known = self.members.get(&member_id).cloned();
        let joined_order = match &known {
            Some(m) => m.joined_order,
            None => {
                self.joins += 1;
                self.joins
            }
        };
        // A follower of a stable group rejoining with unchanged metadata gets the current
        // generation back without a rebalance.
        if let Some(m) = &known {
            let unchanged = m.protocols == request.protocols;
            if unchanged
                && self.state == GroupState::Stable
                && self.leader.as_deref() != Some(member_id.as_str())
            {
                let reply = self.join_response(&member_id, false);
                if let Some(member) = self.members.get_mut(&member_id) {
                    member.last_heard_ms = now;
                }
                return (
                    member_id,
                    Outcome {
                        reply: Some(reply),
                        deliveries: vec![],
                    },
                );
            }
        }
        let member = Member {
            id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms.max(request.session_timeout_ms),
            protocols: request.protocols,
            assignment: known.map(|m| m.assignment).unwrap_or_default(),
            last_heard_ms: now,
            joined_order,
            awaiting_join: true,
            awaiting_sync: false,
        };
        let is_new = !self.members.contains_key(&member_id);
        self.members.insert(member_id.clone(), member);
        if self.protocol_type.is_none() {
            self.protocol_type = Some(request.protocol_type);
        }
        let mut deliveries = Vec::new();
        match self.state {
            GroupState::PreparingRebalance => {
                if self.initial_delay && is_new {
                    let cap = self.max_rebalance_timeout();
                    self.rebalance_deadline_ms =
                        (now + self.config.initial_rebalance_delay_ms).min(now + cap);
                }
            }
            _ => deliveries.extend(self.prepare_rebalance(now)),
        }
        deliveries.extend(self.try_complete_join(now));
        let reply = take_join(&mut deliveries, &member_id);
        (member_id, Outcome { reply, deliveries })
    }

    /// A static member restarted (it rejoins without its old member id): the new member id
    /// takes over the old one's place and assignment, the old id is fenced, and a stable group
    /// with unchanged subscriptions does not rebalance (KIP-345).
    pub(super) fn replace_static_member(
        &mut self,
        now: u64,
        old_id: String,
        request: JoinRequest,
    ) -> (String, Outcome<JoinResponse>) {
        let new_id = Self::new_member_id(&request.client_id);
        let mut deliveries = Vec::new();
        let Some(old) = self.members.remove(&old_id) else {
            // The holder was still pending its first join; start over as a new static member.
            self.instances.retain(|_, id| *id != old_id);
            self.pending_members.remove(&old_id);
            return self.join(now, request);
        };
        if old.awaiting_join {
            deliveries.push(Delivery::Join(
                old_id.clone(),
                JoinResponse::error(ResponseError::FencedInstanceId, &old_id),
            ));
        }
        if old.awaiting_sync {
            deliveries.push(Delivery::Sync(
                old_id.clone(),
                SyncResponse::error_for(ResponseError::FencedInstanceId),
            ));
        }
        let unchanged = old.protocols == request.protocols;
        let member = Member {
            id: new_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms.max(request.session_timeout_ms),
            protocols: request.protocols.clone(),
            assignment: old.assignment,
            last_heard_ms: now,
            joined_order: old.joined_order,
            awaiting_join: false,
            awaiting_sync: false,
        };
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &request.group_instance_id {
            self.instances.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if unchanged && self.state == GroupState::Stable {
            let leader = self.leader.as_deref() == Some(new_id.as_str());
            let reply = self.join_response(&new_id, leader);
            return (
                new_id,
                Outcome {
                    reply: Some(reply),
                    deliveries,
                },
            );
        }
        let (id, mut outcome) = self.join(
            now,
            JoinRequest {
                member_id: new_id,
                ..request
            },
        );
        deliveries.append(&mut outcome.deliveries);
        (
            id,
            Outcome {
                reply: outcome.reply,
                deliveries,
            },
        )
    }

    /// Completes the join phase when every member rejoined (after the initial delay for a
    /// new group) or the deadline passed, dropping members that did not rejoin.
    pub(super) fn try_complete_join(&mut self, now: u64) -> Vec<Delivery> {
        if self.state != GroupState::PreparingRebalance {
            return Vec::new();
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        let due = now >= self.rebalance_deadline_ms;
        if !(due || (all_joined && !self.initial_delay)) {
            return Vec::new();
        }
        self.members.retain(|_, m| m.awaiting_join);
        self.forget_departed_instances();
        self.initial_delay = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return Vec::new();
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_order)
                .map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let mut deliveries = Vec::new();
        for id in ids {
            let leader = self.leader.as_deref() == Some(id.as_str());
            let response = self.join_response(&id, leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.last_heard_ms = now;
            }
            deliveries.push(Delivery::Join(id, response));
        }
        deliveries
    }

    /// The protocol every member supports that most members prefer (each member votes for
    /// its first choice among those all support).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(choice) = m
                .protocols
                .iter()
                .map(|(n, _)| n)
                .find(|n| candidates.contains(n))
            {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let mut best: Option<(&String, usize)> = None;
        for candidate in candidates {
            let v = votes.get(candidate).copied().unwrap_or(0);
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((candidate, v));
            }
        }
        best.map(|(n, _)| n.clone())
    }

    pub(super) fn join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.group_instance_id.clone(),
                            m.metadata(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}
