//! Compact Nexmark records: the fields the queries read, with [`Codec`] impls so they can
//! cross exchanges, and the rows the queries write (JSON lines).

use serde::Serialize;
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};

use super::generator::{Word, WordList};

/// A new person (Nexmark's `Person`, without e-mail, credit card and padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Person {
    /// Person id.
    pub id: u64,
    /// Full name.
    pub name: Word,
    /// US city.
    pub city: Word,
    /// US state.
    pub state: Word,
    /// Event time, ms.
    pub date_time: i64,
}

/// A new auction (Nexmark's `Auction`, without item name, description and padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Auction {
    /// Auction id.
    pub id: u64,
    /// Seller's person id.
    pub seller: u64,
    /// Category id.
    pub category: u64,
    /// Initial bid, cents.
    pub initial_bid: u64,
    /// Reserve price, cents.
    pub reserve: u64,
    /// Event time, ms.
    pub date_time: i64,
    /// When the auction closes, ms.
    pub expires: i64,
}

/// A bid (Nexmark's `Bid`, without channel, url and padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Bid {
    /// Auction id.
    pub auction: u64,
    /// Bidder's person id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Event time, ms.
    pub date_time: i64,
}

/// One Nexmark event. `Copy`: it owns no heap memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event time, ms.
    #[inline]
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The bid, if it is one.
    #[inline]
    pub fn into_bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }
}

impl Event {
    /// The crate's event in weir's model; an error for a person whose name, city or state
    /// is not in the crate's default word lists ([`Word`]).
    pub fn from_crate(event: ::nexmark::event::Event) -> Result<Self, String> {
        use ::nexmark::event::Event as E;
        Ok(match event {
            E::Person(p) => {
                let word = |list, text: &str| {
                    Word::find(list, text)
                        .ok_or_else(|| format!("{text:?} is not in the Nexmark word list {list:?}"))
                };
                Event::Person(Person {
                    id: p.id as u64,
                    name: word(WordList::FullName, &p.name)?,
                    city: word(WordList::City, &p.city)?,
                    state: word(WordList::State, &p.state)?,
                    date_time: p.date_time as i64,
                })
            }
            E::Auction(a) => Event::Auction(Auction {
                id: a.id as u64,
                seller: a.seller as u64,
                category: a.category as u64,
                initial_bid: a.initial_bid as u64,
                reserve: a.reserve as u64,
                date_time: a.date_time as i64,
                expires: a.expires as i64,
            }),
            E::Bid(b) => Event::Bid(Bid {
                auction: b.auction as u64,
                bidder: b.bidder as u64,
                price: b.price as u64,
                date_time: b.date_time as i64,
            }),
        })
    }
}

/// Encoded as its index in its list, one byte (the list is the field's).
pub(crate) fn decode_word(list: WordList, input: &mut Decoder<'_>) -> Result<Word, DecodeError> {
    Word::new(list, usize::from(input.take_u8()?))
        .ok_or(DecodeError::Invalid("Nexmark word index past its list"))
}

impl Codec for Person {
    #[inline]
    fn encoded_len(&self) -> usize {
        8 + 3 + 8
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u64(self.id);
        out.put_u8(self.name.index());
        out.put_u8(self.city.index());
        out.put_u8(self.state.index());
        out.put_i64(self.date_time);
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: input.take_u64()?,
            name: decode_word(WordList::FullName, input)?,
            city: decode_word(WordList::City, input)?,
            state: decode_word(WordList::State, input)?,
            date_time: input.take_i64()?,
        })
    }
}

impl Codec for Auction {
    #[inline]
    fn encoded_len(&self) -> usize {
        56
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u64(self.id);
        out.put_u64(self.seller);
        out.put_u64(self.category);
        out.put_u64(self.initial_bid);
        out.put_u64(self.reserve);
        out.put_i64(self.date_time);
        out.put_i64(self.expires);
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: input.take_u64()?,
            seller: input.take_u64()?,
            category: input.take_u64()?,
            initial_bid: input.take_u64()?,
            reserve: input.take_u64()?,
            date_time: input.take_i64()?,
            expires: input.take_i64()?,
        })
    }
}

impl Codec for Bid {
    #[inline]
    fn encoded_len(&self) -> usize {
        32
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u64(self.auction);
        out.put_u64(self.bidder);
        out.put_u64(self.price);
        out.put_i64(self.date_time);
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auction: input.take_u64()?,
            bidder: input.take_u64()?,
            price: input.take_u64()?,
            date_time: input.take_i64()?,
        })
    }
}

impl Codec for Event {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + match self {
            Event::Person(p) => p.encoded_len(),
            Event::Auction(a) => a.encoded_len(),
            Event::Bid(b) => b.encoded_len(),
        }
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        match self {
            Event::Person(p) => {
                out.put_u8(0);
                p.encode(out);
            }
            Event::Auction(a) => {
                out.put_u8(1);
                a.encode(out);
            }
            Event::Bid(b) => {
                out.put_u8(2);
                b.encode(out);
            }
        }
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match input.take_u8()? {
            0 => Ok(Event::Person(Person::decode(input)?)),
            1 => Ok(Event::Auction(Auction::decode(input)?)),
            2 => Ok(Event::Bid(Bid::decode(input)?)),
            _ => Err(DecodeError::Invalid("Nexmark event tag is not 0, 1 or 2")),
        }
    }
}

/// q2's row: a bid on an auction whose id is a multiple of 123.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AuctionPrice {
    /// Auction id.
    pub auction: u64,
    /// Price, cents.
    pub price: u64,
}

/// q5's row: an auction with the most bids in a sliding window (all of them on a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HotItem {
    /// Window start, ms.
    pub window_start: i64,
    /// Window end, ms.
    pub window_end: i64,
    /// Auction id.
    pub auction: u64,
    /// Bids on it in the window.
    pub num: u64,
}

/// q7's row: a bid with the highest price of its tumbling window (all of them on a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HighestBid {
    /// Window start, ms.
    pub window_start: i64,
    /// Window end, ms.
    pub window_end: i64,
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Event time of the bid, ms.
    pub date_time: i64,
}

/// q8's row: a person who was created and opened an auction in the same tumbling window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NewSeller {
    /// Person id.
    pub id: u64,
    /// Name (its text in the rows file).
    pub name: Word,
    /// Window start, ms.
    pub window_start: i64,
}

/// A result row of any query (serialized as the inner row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Row {
    /// q0 and q1.
    Bid(Bid),
    /// q2.
    AuctionPrice(AuctionPrice),
    /// q5.
    HotItem(HotItem),
    /// q7.
    HighestBid(HighestBid),
    /// q8.
    NewSeller(NewSeller),
}

impl Codec for Row {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + match self {
            Row::Bid(b) => b.encoded_len(),
            Row::AuctionPrice(_) => 16,
            Row::HotItem(_) => 32,
            Row::HighestBid(_) => 48,
            Row::NewSeller(_) => 8 + 1 + 8,
        }
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        match self {
            Row::Bid(b) => {
                out.put_u8(0);
                b.encode(out);
            }
            Row::AuctionPrice(r) => {
                out.put_u8(1);
                out.put_u64(r.auction);
                out.put_u64(r.price);
            }
            Row::HotItem(r) => {
                out.put_u8(2);
                out.put_i64(r.window_start);
                out.put_i64(r.window_end);
                out.put_u64(r.auction);
                out.put_u64(r.num);
            }
            Row::HighestBid(r) => {
                out.put_u8(3);
                out.put_i64(r.window_start);
                out.put_i64(r.window_end);
                out.put_u64(r.auction);
                out.put_u64(r.bidder);
                out.put_u64(r.price);
                out.put_i64(r.date_time);
            }
            Row::NewSeller(r) => {
                out.put_u8(4);
                out.put_u64(r.id);
                out.put_u8(r.name.index());
                out.put_i64(r.window_start);
            }
        }
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match input.take_u8()? {
            0 => Row::Bid(Bid::decode(input)?),
            1 => Row::AuctionPrice(AuctionPrice {
                auction: input.take_u64()?,
                price: input.take_u64()?,
            }),
            2 => Row::HotItem(HotItem {
                window_start: input.take_i64()?,
                window_end: input.take_i64()?,
                auction: input.take_u64()?,
                num: input.take_u64()?,
            }),
            3 => Row::HighestBid(HighestBid {
                window_start: input.take_i64()?,
                window_end: input.take_i64()?,
                auction: input.take_u64()?,
                bidder: input.take_u64()?,
                price: input.take_u64()?,
                date_time: input.take_i64()?,
            }),
            4 => Row::NewSeller(NewSeller {
                id: input.take_u64()?,
                name: decode_word(WordList::FullName, input)?,
                window_start: input.take_i64()?,
            }),
            _ => return Err(DecodeError::Invalid("Nexmark row tag is not 0..=4")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(value: T) {
        assert_eq!(weir_core::codec::round_trip(&value), Ok(value));
    }

    #[test]
    fn events_and_rows_round_trip() {
        let bid = Bid {
            auction: 1000,
            bidder: 1001,
            price: 42,
            date_time: 7,
        };
        round_trip(Event::Bid(bid));
        round_trip(Event::Person(Person {
            id: 1,
            name: Word::find(WordList::FullName, "peter shultz").unwrap(),
            city: Word::find(WordList::City, "boise").unwrap(),
            state: Word::find(WordList::State, "id").unwrap(),
            date_time: 3,
        }));
        let mut bad_state = weir_core::codec::encode_to_vec(&Event::Person(Person {
            id: 1,
            name: Word::new(WordList::FullName, 98).unwrap(),
            city: Word::new(WordList::City, 9).unwrap(),
            state: Word::new(WordList::State, 5).unwrap(),
            date_time: 3,
        }));
        // Tag, id, name, city: the state's index byte, past the six states.
        bad_state[1 + 8 + 2] = 6;
        assert!(Event::decode(&mut Decoder::new(&bad_state)).is_err());
        round_trip(Event::Auction(Auction {
            id: 1,
            seller: 2,
            category: 3,
            initial_bid: 4,
            reserve: 5,
            date_time: 6,
            expires: 7,
        }));
        round_trip(Row::Bid(bid));
        round_trip(Row::AuctionPrice(AuctionPrice {
            auction: 1,
            price: 2,
        }));
        round_trip(Row::HotItem(HotItem {
            window_start: 0,
            window_end: 10,
            auction: 3,
            num: 4,
        }));
        round_trip(Row::HighestBid(HighestBid {
            window_start: 0,
            window_end: 10,
            auction: 1,
            bidder: 2,
            price: 3,
            date_time: 4,
        }));
        round_trip(Row::NewSeller(NewSeller {
            id: 1,
            name: Word::find(WordList::FullName, "kate smith").unwrap(),
            window_start: 10,
        }));
    }
}
