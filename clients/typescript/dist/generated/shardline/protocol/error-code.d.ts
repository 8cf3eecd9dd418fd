export declare enum ErrorCode {
    None = 0,
    /**
     * Not a valid ClientMessage (FlatBuffers verification failed). Close 1002 follows.
     */
    BadMessage = 1,
    /**
     * A message not allowed in this state (Input before Join, Join before Hello). Close 1008 follows.
     */
    OutOfOrder = 2,
    UnsupportedVersion = 3,
    /**
     * NaN/infinite axes or an out-of-range field; the input is dropped, the connection stays.
     */
    BadInput = 4,
    InvalidInstanceId = 5,
    InstanceFull = 10,
    InstanceNotFound = 11,
    /**
     * The shard is at --instances-per-shard-max and cannot create another instance.
     */
    ShardFull = 12,
    NotInInstance = 13,
    AlreadyInInstance = 14,
    /**
     * Resume token unknown or its grace period expired.
     */
    ResumeRefused = 20,
    /**
     * The server requires a join ticket and Hello carried none. Close 1008 follows.
     */
    TicketRequired = 21,
    /**
     * Malformed, forged (bad signature) or expired ticket. Close 1008 follows.
     */
    TicketInvalid = 22,
    /**
     * The ticket was already used. Close 1008 follows.
     */
    TicketReplayed = 23,
    /**
     * The ticket does not admit this player to that instance; the connection stays.
     */
    TicketWrongInstance = 24,
    /**
     * Busy, retry shortly: the table of used join tickets is full (close 1013 follows), or
     * in a fleet a Join that needs the directory could not be asked or answered (the
     * connection stays). A node at --max-connections, out of connection buffers or
     * shedding load refuses the WebSocket upgrade itself instead (HTTP 503, Retry-After: 1).
     */
    ServerFull = 30,
    ShuttingDown = 31,
    /**
     * The instance asked for (/play?instance=ID) runs on another node of the fleet; the message
     * is that node's WebSocket base URL (connect to <url>/play?instance=ID). Close 1000 follows.
     */
    WrongNode = 32,
    /**
     * Too many instances created: by this connection (--creates-per-conn-per-min) or from this
     * address (--creates-per-ip-per-min). Nothing was created; the connection stays, and a
     * Join of an existing instance still works. Retry later.
     */
    RateLimited = 33,
    Internal = 40,
    /**
     * A Message whose body is over Limits.message_bytes_max: dropped (counted), the
     * connection stays.
     */
    MessageTooLarge = 50,
    /**
     * Game messages faster than --game-messages-per-second-max: the client floods.
     * Close 1008 follows (the seat is kept, as after any drop).
     */
    MessageFlood = 51,
    /**
     * The game refused this player (Game::on_join): the message is the game's reason. The
     * player is not seated (after a resume: its seat is given up); the connection stays.
     */
    JoinRefused = 52
}
