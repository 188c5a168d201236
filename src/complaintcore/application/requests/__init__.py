"""What a client sends to act on complaints, validated: the command bodies of the API and of bulk
import alike, and the field types they share."""
