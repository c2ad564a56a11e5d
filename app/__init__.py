"""The Likeness studio: Qt widgets that observe and edit a core.avatar.Avatar document."""
